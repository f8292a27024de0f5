"""backline.web"""
