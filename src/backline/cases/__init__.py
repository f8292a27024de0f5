"""backline.cases"""
